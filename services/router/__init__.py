"""Router: triage (skill, priority, tier), the agent roster, and assignment.
Second stop of every ticket."""
