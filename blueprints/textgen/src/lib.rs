//! The text-generation blueprint (work in progress).
