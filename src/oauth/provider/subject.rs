// SPDX-License-Identifier: Apache-2.0
//! Who the user is at a provider without ID tokens (DESIGN.md §12): a GET of `userInfo.url` with
//! the fresh access token, and the subject at `subjectField` in its JSON answer. Also the one rule
//! for turning a claim or member into a subject, shared with `oidc.subjectClaim`.

use std::time::Duration;

use serde_json::Value;

use super::{IdpError, UpstreamProvider, UpstreamUser};
use crate::config::spec::UserInfoSpec;
use crate::oauth::strict_json::StrictJson;
use crate::oauth::{read_capped, BodyError};
use crate::secret::Token;

/// Longest wait for a userinfo answer.
const USERINFO_BUDGET: Duration = Duration::from_secs(10);
/// Largest userinfo answer read (a profile, not a document).
const MAX_USERINFO_BYTES: usize = 256 * 1024;

/// A subject as we store it: a non-empty string verbatim, or an integer in decimal
/// (`12345` → `"12345"`). Anything else names nobody.
pub(super) fn subject_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// The member at `path` (one name per step) of `object`.
fn member<'a>(object: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(object.get(first)?, |value, step| {
        value.as_object()?.get(step)
    })
}

impl UpstreamProvider {
    /// Asks `info.url` who holds `access_token`.
    ///
    /// # Errors
    /// [`IdpError::Unavailable`] when the endpoint does not answer or fails (5xx, 408, 429);
    /// [`IdpError::Rejected`] when it refuses or its answer names nobody.
    pub(super) async fn user_info(
        &self,
        info: &UserInfoSpec,
        access_token: &Token,
    ) -> Result<UpstreamUser, IdpError> {
        let request = self
            .http
            .get(info.url.clone())
            .bearer_auth(access_token.expose_secret())
            .header(http::header::ACCEPT, "application/json")
            .send();
        let response = tokio::time::timeout(USERINFO_BUDGET, request)
            .await
            .map_err(|_| self.unavailable("userinfo endpoint timed out"))?
            .map_err(|_| self.unavailable("userinfo endpoint unreachable"))?;
        match response.status().as_u16() {
            200..=299 => {}
            408 | 429 | 500..=599 => return Err(self.unavailable("userinfo endpoint failed")),
            _ => return Err(self.rejected("userinfo request refused")),
        }
        let body = tokio::time::timeout(USERINFO_BUDGET, read_capped(response, MAX_USERINFO_BYTES))
            .await
            .map_err(|_| self.unavailable("userinfo endpoint timed out"))?
            .map_err(|e| match e {
                BodyError::TooLarge => self.rejected("userinfo answer too large"),
                BodyError::Timeout => self.unavailable("userinfo endpoint timed out"),
                BodyError::Failed => self.unavailable("userinfo endpoint unreachable"),
            })?;
        let Ok(StrictJson(Value::Object(claims))) = serde_json::from_slice(&body) else {
            return Err(self.rejected("userinfo answer is not a JSON object"));
        };
        let subject = member(&claims, &info.subject_field)
            .and_then(subject_value)
            .ok_or_else(|| self.rejected("userinfo answer has no usable subject"))?;
        Ok(UpstreamUser { subject, claims })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_a_string_or_an_integer_in_decimal() {
        assert_eq!(
            subject_value(&serde_json::json!(12345)).as_deref(),
            Some("12345")
        );
        assert_eq!(subject_value(&serde_json::json!(-7)).as_deref(), Some("-7"));
        assert_eq!(
            subject_value(&serde_json::json!("u-1")).as_deref(),
            Some("u-1")
        );
        for nobody in [
            serde_json::json!(""),
            serde_json::json!(1.5),
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!({"id": 1}),
            serde_json::json!([1]),
        ] {
            assert_eq!(subject_value(&nobody), None, "{nobody}");
        }
    }

    #[test]
    fn a_dotted_path_walks_objects_only() {
        let doc = serde_json::json!({"data": {"user": {"id": 7}}, "list": [{"id": 1}]});
        let object = doc.as_object().unwrap();
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            member(object, &path("data.user.id")),
            Some(&serde_json::json!(7))
        );
        assert_eq!(member(object, &path("list.0.id")), None);
        assert_eq!(member(object, &path("data.missing")), None);
    }
}
