"""Small tools with no business meaning (fields, validators, keys, formatting, decorators,
per-process state, error reporting, admin URLs): they import no capability."""
