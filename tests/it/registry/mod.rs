//! `ferry image copy` against real registries (Debian's distribution 2.8)
//! on 127.0.0.1: anonymous, htpasswd Basic with user `<token>`, and token
//! auth. Outcomes are checked with an independent client and the
//! registries' access logs.

mod copy;
mod integrity;
mod retries;
mod rules;
mod simulator;

use std::future::Future;

use ferry::registry::{Credential, Credentials};

use crate::support::command::{Run, ferry_with};
use crate::support::oci_image::{RegistryClient, TestImage};
use crate::support::registry_server::Target;

pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(future)
}

/// Pushes `image` as `repository:tag` with the independent client.
pub fn seed(target: &Target, repository: &str, tag: &str, image: &TestImage) {
    block_on(async {
        RegistryClient::connect(target, repository).await.push(image, tag).await;
    });
}

/// An independent client for checking a registry's contents.
pub fn inspect(target: &Target, repository: &str) -> RegistryClient {
    block_on(RegistryClient::connect(target, repository))
}

/// Library credentials for the given registries.
pub fn credentials(targets: &[&Target]) -> Credentials {
    let mut credentials = Credentials::anonymous();
    for target in targets {
        if let Some((user, password)) = &target.credentials {
            credentials.insert(target.host.clone(), Credential::basic(user, password));
        }
    }
    credentials
}

/// Runs `ferry ARGS` with `env` set and with `DOCKER_CONFIG` pointing at
/// an empty directory, so the machine's Docker logins play no part.
pub fn ferry_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let docker_config = dir.path().to_str().unwrap();
    let env = [env, &[("DOCKER_CONFIG", docker_config)]].concat();
    ferry_with(dir.path(), args, &env)
}

/// `ferry image copy SRC DST --output json ARGS`, credentials passed in
/// `SRC_CREDS` / `DST_CREDS` as the CLI documents.
pub fn ferry_copy(src: &Target, src_ref: &str, dst: &Target, dst_ref: &str, args: &[&str]) -> Run {
    let (src_image, dst_image) = (src.image(src_ref), dst.image(dst_ref));
    let mut argv = vec!["image", "copy", &src_image, &dst_image, "--output", "json"];
    let mut env = Vec::new();
    let values = (src.creds_value(), dst.creds_value());
    if let Some(value) = &values.0 {
        argv.extend(["--src-creds-env", "SRC_CREDS"]);
        env.push(("SRC_CREDS", value.as_str()));
    }
    if let Some(value) = &values.1 {
        argv.extend(["--dst-creds-env", "DST_CREDS"]);
        env.push(("DST_CREDS", value.as_str()));
    }
    argv.extend(args);
    ferry_with_env(&argv, &env)
}

/// The JSON report of a successful run.
pub fn report(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, Some(0), "ferry failed:\n{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["schema"], "ferry.image-copy/v1");
    report
}
