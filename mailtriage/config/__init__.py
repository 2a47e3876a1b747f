"""mailtriage/config"""
