"""Lesson files: the format, its parser and checker (the content lives in the top-level lessons/)."""

from nnsim.lessons.format import Lesson, Step, WidgetBlock, lesson_files, parse_lesson

__all__ = ["Lesson", "Step", "WidgetBlock", "lesson_files", "parse_lesson"]
