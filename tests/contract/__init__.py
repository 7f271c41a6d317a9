"""The event contract: schemas, golden examples, the AsyncAPI document."""
