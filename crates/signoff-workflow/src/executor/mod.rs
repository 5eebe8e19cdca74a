//! Executors: what applies an approved action.
