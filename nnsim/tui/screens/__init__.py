"""One screen a file: home, lesson, help."""
