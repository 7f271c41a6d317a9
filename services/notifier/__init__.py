"""Notifier: every message deskstream sends to a customer, on the customer's own
channel, sent once. Third stop of every ticket."""
