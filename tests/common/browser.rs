// SPDX-License-Identifier: Apache-2.0
//! A user agent for login tests: follows redirects by hand (so every hop can be inspected),
//! keeps cookies, and fills in oidc-provider's devInteractions login form.

use std::collections::BTreeMap;

/// One HTTP answer.
#[derive(Debug)]
pub struct Hop {
    pub status: u16,
    pub location: Option<url::Url>,
    pub body: String,
}

pub struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    pub login: String,
    /// Every `Set-Cookie` value received, in order.
    pub set_cookies: Vec<String>,
}

impl Browser {
    /// A browser whose user types `login` into every upstream login form.
    pub fn new(login: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            login: login.to_owned(),
            set_cookies: Vec::new(),
        }
    }

    /// Sets cookie `name` (as if the server had), e.g. to forge one.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// The value of cookie `name`, if the browser holds one.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder, base: &url::Url) -> Hop {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookie_header())
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            self.set_cookies.push(value.to_str().unwrap().to_owned());
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| base.join(l.to_str().unwrap()).unwrap());
        Hop {
            status,
            location,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &url::Url) -> Hop {
        let request = self.http.get(url.clone());
        self.send(request, url).await
    }

    pub async fn post_form(&mut self, url: &url::Url, form: &str) -> Hop {
        let request = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        self.send(request, url).await
    }

    /// Follows redirects from `url`, logging in at every upstream login form, until a redirect
    /// leaves for a URL starting with `stop_at` (returned), or a hop is neither a redirect nor a
    /// login form (then that hop's URL and the hop are returned as an error).
    pub async fn walk(
        &mut self,
        url: url::Url,
        stop_at: &str,
    ) -> Result<url::Url, (url::Url, Hop)> {
        let mut url = url;
        for _ in 0..30 {
            if url.as_str().starts_with(stop_at) {
                return Ok(url);
            }
            let hop = self.get(&url).await;
            match (&hop.location, hop.status) {
                (Some(next), 301..=303 | 307 | 308) => url = next.clone(),
                (None, 200) if hop.body.contains("name=\"login\"") => {
                    let action =
                        form_action(&hop.body).map_or(url.clone(), |a| url.join(&a).unwrap());
                    let form = format!("prompt=login&login={}&password=any", self.login);
                    let next = self.post_form(&action, &form).await;
                    url = next.location.expect("the login form redirects");
                }
                _ => return Err((url, hop)),
            }
        }
        panic!("too many hops");
    }
}

fn form_action(html: &str) -> Option<String> {
    let start = html.find("action=\"")? + "action=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

/// The value of query parameter `name` in `url`.
pub fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
