// SPDX-License-Identifier: Apache-2.0
//! The embedded OAuth authorization server ("Mode B", DESIGN.md §7).
//!
//! For now it holds the signing key: Check verifies our own tokens with it in process, and tests
//! mint tokens with it. The login endpoints come with the authorization-server issue.

pub mod keys;

pub use keys::SigningKey;
