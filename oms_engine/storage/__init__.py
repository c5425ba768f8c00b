"""Storage: the engine and sessions (db), the tables (models), migrations, and row claims for workers."""
