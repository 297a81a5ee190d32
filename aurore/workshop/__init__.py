"""The workshop's tools: the grader (`check`), exercise files, fixtures, `doctor`, the organisers' kit."""
