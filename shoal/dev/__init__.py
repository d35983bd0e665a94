"""Developer tooling: local swarms of shoald processes."""
