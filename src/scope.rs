// SPDX-License-Identifier: Apache-2.0
//! OAuth scopes (RFC 6749 §3.3): the syntax every scope we read or write must have, and the
//! small sets the Check compares (what a backend requires, what a token holds).

/// Longest `scope` value we read or write (a token claim, an authorize request).
pub const MAX_SCOPE_LENGTH: usize = 1024;

/// One RFC 6749 scope-token: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A whole `scope` value: scope-tokens separated by single spaces, at most
/// [`MAX_SCOPE_LENGTH`] bytes.
pub fn is_scope(scope: &str) -> bool {
    scope.len() <= MAX_SCOPE_LENGTH && scope.split(' ').all(is_scope_token)
}

/// A set of scopes, in the order first seen, each once. Small (a handful of entries), so a scan
/// is the lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Box<[Box<str>]>);

impl Scopes {
    /// The scopes of a `scope` value, or `None` when it is not one ([`is_scope`]).
    pub fn parse(scope: &str) -> Option<Self> {
        if !is_scope(scope) {
            return None;
        }
        Some(Self::from_iter(scope.split(' ')))
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| &**s == scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// The scopes of `self` that `allowed` holds, as one `scope` value (`None` when none is).
    pub fn intersection_value(&self, allowed: &Scopes) -> Option<String> {
        let kept: Vec<&str> = self.iter().filter(|s| allowed.contains(s)).collect();
        (!kept.is_empty()).then(|| kept.join(" "))
    }

    /// `self`, then what `other` adds, as one space-separated `scope` value (`None` when both
    /// are empty).
    pub fn union_value(&self, other: &Scopes) -> Option<String> {
        let mut all = self.0.to_vec();
        for s in other.0.iter() {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        (!all.is_empty()).then(|| all.join(" "))
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut out: Vec<Box<str>> = Vec::new();
        for s in iter {
            if !out.iter().any(|o| &**o == s) {
                out.push(s.into());
            }
        }
        Self(out.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_syntax_follows_rfc_6749() {
        assert!(is_scope("openid mcp:tools read"));
        for bad in [
            "",
            "a  b",
            " a",
            "a ",
            "read \"admin\"",
            "a\\b",
            "caf\u{e9}",
            "a\tb",
        ] {
            assert!(!is_scope(bad), "{bad:?}");
        }
        assert!(!is_scope(&"a".repeat(MAX_SCOPE_LENGTH + 1)));
    }

    #[test]
    fn a_set_keeps_first_order_without_repeats() {
        let s = Scopes::parse("b a b").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), ["b", "a"]);
        assert!(s.contains("a") && !s.contains("c"));
        assert!(Scopes::parse("a").unwrap().is_subset(&s));
        assert!(!Scopes::parse("a c").unwrap().is_subset(&s));
    }

    #[test]
    fn the_union_lists_the_first_set_then_what_the_second_adds() {
        let needed = Scopes::parse("tools:admin read").unwrap();
        let held = Scopes::parse("read write").unwrap();
        assert_eq!(
            needed.union_value(&held).as_deref(),
            Some("tools:admin read write")
        );
        assert_eq!(Scopes::default().union_value(&Scopes::default()), None);
        assert_eq!(held.intersection_value(&needed).as_deref(), Some("read"));
        assert_eq!(Scopes::parse("x").unwrap().intersection_value(&held), None);
    }
}
