"""mailtriage/tickets"""
