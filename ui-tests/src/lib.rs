//! trybuild cases live under `tests/`.
