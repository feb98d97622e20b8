//! Runnable examples of the liqo-rs crates: see the `[[example]]` targets of this package.
