"""edusync: event-driven integration worker for school-district data."""
