"""Pages for cases, notes and case access. Views parse input, ask the policy (through
access_*), call selectors to read and actions to write, and render."""
