// SPDX-License-Identifier: Apache-2.0
//! Per-tool rules (DESIGN.md §10): a backend's `tools: [{name, requiredScopes}]`, where `name`
//! is an exact tool name or a pattern in which `*` stands for any run of characters. Every rule
//! that matches a called tool adds its scopes.

use crate::scope::Scopes;

/// A tool name or a `*` pattern, valid by the config rules (V-17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPattern(Box<str>);

/// Characters a pattern may not hold: glob syntax of other tools that is not ours, so nobody
/// writes `admin_?` believing it matches `admin_1`.
pub const RESERVED_PATTERN_CHARS: &[char] = &['?', '[', ']', '{', '}', '\\'];

/// Longest tool name (or pattern) accepted.
pub const MAX_TOOL_NAME: usize = 128;

impl ToolPattern {
    /// `pattern` as written (checked by the config rules).
    pub fn new(pattern: &str) -> Self {
        Self(pattern.into())
    }

    /// Whether `name` matches: `*` is any run of characters (also none), the rest is literal.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let middle: Vec<&str> = parts.collect();
        let Some((last, middle)) = middle.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// One rule: calls of matching tools need these scopes.
#[derive(Debug, Clone)]
pub struct ToolRule {
    /// The tools it covers.
    pub pattern: ToolPattern,
    /// What a call of one of them needs.
    pub required_scopes: Scopes,
}

/// A backend's rules, in the order written.
#[derive(Debug, Clone, Default)]
pub struct ToolRules(Box<[ToolRule]>);

impl ToolRules {
    /// The rules.
    pub fn new(rules: Vec<ToolRule>) -> Self {
        Self(rules.into_boxed_slice())
    }

    /// Whether the backend has no tool rule (then a request's body and tool headers are never
    /// read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `base` plus every scope the rules matching one of `tools` add (`None` when they add
    /// nothing).
    pub fn needed<'t>(
        &self,
        base: &Scopes,
        tools: impl IntoIterator<Item = &'t str>,
    ) -> Option<Scopes> {
        let mut needed: Vec<&str> = base.iter().collect();
        let before = needed.len();
        for tool in tools {
            for rule in self.0.iter().filter(|r| r.pattern.matches(tool)) {
                for scope in rule.required_scopes.iter() {
                    if !needed.contains(&scope) {
                        needed.push(scope);
                    }
                }
            }
        }
        (needed.len() > before).then(|| needed.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_is_any_run_of_characters() {
        let cases = [
            ("admin_reset", "admin_reset", true),
            ("admin_reset", "admin_reset2", false),
            ("admin_*", "admin_", true),
            ("admin_*", "admin_reset", true),
            ("admin_*", "xadmin_reset", false),
            ("*_delete", "repo_delete", true),
            ("*_delete", "repo_delete_all", false),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("世界*", "世界_tool", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                ToolPattern::new(pattern).matches(name),
                expected,
                "{pattern} ~ {name}"
            );
        }
    }

    #[test]
    fn every_matching_rule_adds_its_scopes() {
        let rule = |p: &str, s: &str| ToolRule {
            pattern: ToolPattern::new(p),
            required_scopes: Scopes::parse(s).unwrap(),
        };
        let rules = ToolRules::new(vec![
            rule("admin_*", "tools:admin"),
            rule("admin_reset", "tools:danger"),
            rule("echo", "tools"),
        ]);
        let base = Scopes::parse("tools").unwrap();
        let needed = rules.needed(&base, ["admin_reset"]).unwrap();
        assert_eq!(
            needed.iter().collect::<Vec<_>>(),
            ["tools", "tools:admin", "tools:danger"]
        );
        // A rule that only repeats what the backend needs adds nothing.
        assert!(rules.needed(&base, ["echo"]).is_none());
        assert!(rules.needed(&base, ["whoami"]).is_none());
        let batch = rules
            .needed(&Scopes::default(), ["echo", "admin_x"])
            .unwrap();
        assert_eq!(batch.iter().collect::<Vec<_>>(), ["tools", "tools:admin"]);
    }
}
