// SPDX-License-Identifier: Apache-2.0
//! [`Decision`] → `CheckResponse`. Every header is set with `append: false` and
//! `OVERWRITE_IF_EXISTS_OR_ADD` explicitly; dynamic metadata carries facts, never a token.

use std::collections::BTreeMap;

use prost_types::{value::Kind, Struct, Value};

use super::{Decision, Denial, Facts, GrpcCode};
use crate::strategy::{Mutations, AUTHORIZATION};
use crate::wire::pb::auth::{check_response, CheckResponse, DeniedHttpResponse, OkHttpResponse};
use crate::wire::pb::core::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
};
use crate::wire::pb::envoy::r#type::v3::HttpStatus;
use crate::wire::pb::google::rpc::Status;

/// Encodes a decision for Envoy.
pub fn encode(decision: Decision) -> CheckResponse {
    match decision {
        Decision::Allow { mutations, facts } => allow(mutations, &facts),
        Decision::Deny(denial) => deny(denial),
    }
}

fn header(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append: Some(false),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: false,
    }
}

fn allow(mutations: Mutations, facts: &Facts) -> CheckResponse {
    let headers = mutations
        .set
        .map(|set| vec![header(&set.name, set.value)])
        .unwrap_or_default();
    // Never list a header we also set: Envoy applies removals after sets. The spoofed
    // spellings differ from the set name by construction.
    let mut headers_to_remove = mutations.remove_spoofed;
    if mutations.remove_authorization {
        headers_to_remove.push(AUTHORIZATION.to_owned());
    }

    CheckResponse {
        status: Some(Status {
            code: 0,
            message: String::new(),
        }),
        http_response: Some(check_response::HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            response_headers_to_add: Vec::new(),
            query_parameters_to_remove: mutations.remove_query,
        })),
        dynamic_metadata: Some(metadata(facts)),
    }
}

fn string(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_owned())),
    }
}

fn metadata(facts: &Facts) -> Struct {
    let mut fields = BTreeMap::new();
    fields.insert("backend".to_owned(), string(&facts.backend));
    fields.insert("strategy".to_owned(), string(facts.strategy.as_str()));
    if let Some(subject) = &facts.subject {
        fields.insert("subject".to_owned(), string(subject));
    }
    fields.insert(
        "identity_cache".to_owned(),
        string(if facts.identity_cache_hit {
            "hit"
        } else {
            "miss"
        }),
    );
    Struct { fields }
}

fn deny(denial: Denial) -> CheckResponse {
    let mut headers = vec![header("content-type", "application/json".to_owned())];
    if let Some(challenge) = denial.www_authenticate {
        headers.push(header("www-authenticate", challenge));
    }
    if denial.grpc == GrpcCode::Unavailable {
        headers.push(header("retry-after", "1".to_owned()));
    }
    let response = DeniedHttpResponse {
        status: Some(HttpStatus {
            code: i32::from(denial.http_status),
        }),
        headers,
        body: denial.body,
    };
    let http_response = match denial.grpc {
        // Envoy turns a bare status 14 into a 403; error_response carries our 503 and Retry-After.
        GrpcCode::Unavailable => check_response::HttpResponse::ErrorResponse(response),
        GrpcCode::Unauthenticated | GrpcCode::PermissionDenied => {
            check_response::HttpResponse::DeniedResponse(response)
        }
    };
    CheckResponse {
        status: Some(Status {
            code: denial.grpc.code(),
            message: denial.reason.to_owned(),
        }),
        http_response: Some(http_response),
        dynamic_metadata: None,
    }
}
