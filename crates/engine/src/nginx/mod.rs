//! nginx configuration syntax: tokenizer/parser with byte spans, and the context rules.
pub mod ast;
pub mod context;
pub mod parser;
