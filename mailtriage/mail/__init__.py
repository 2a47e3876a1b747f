"""mailtriage/mail"""
