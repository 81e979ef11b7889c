"""One router per resource; each route declares its minimum role in its signature."""
