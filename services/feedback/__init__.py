"""Feedback: what customers think of the help they got, and the support figures
(volumes, response and resolution times) ops look at. Last stop of every ticket."""
