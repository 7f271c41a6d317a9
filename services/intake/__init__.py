"""Intake: the channels customers write on, and the normaliser that turns each
contact into ticket events. First stop of every ticket."""
