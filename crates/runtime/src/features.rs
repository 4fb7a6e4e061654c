//! `rvisor features`: what this runtime honours of a bundle, as the runtime
//! spec's features document (containerd asks `runc features` before it uses,
//! say, a mount option). Each list comes from the code that implements it.

use crate::commands::Result;
use oci_spec::runtime::Features;

/// The features document.
pub fn features() -> Result<Features> {
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        // Run on the host (`commands.rs`); startContainer would run inside.
        "hooks": ["prestart", "createRuntime", "createContainer", "poststart", "poststop"],
        "mountOptions": &crate::oci::MOUNT_OPTIONS[..],
        "linux": {
            // The sandbox's kernel gives a container all of these (a pod's
            // network and PID namespaces are shared by path).
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": &crate::oci::CAPABILITIES[..],
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": &crate::seccomp::ACTIONS[..],
                "operators": &crate::seccomp::OPERATORS[..],
                // The profile's filter kills any other architecture's call.
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": [],
                "supportedFlags": []
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {"dev.rvisor.version": env!("CARGO_PKG_VERSION")}
    });
    serde_json::from_value(doc).map_err(|e| format!("features: {e}"))
}

/// Prints the document as JSON.
pub fn print() -> Result<()> {
    let text = serde_json::to_string_pretty(&features()?).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_features_document_parses_and_names_what_the_code_takes() {
        let f = features().unwrap();
        let linux = f.linux().as_ref().unwrap();
        let seccomp = linux.seccomp().as_ref().unwrap();
        assert_eq!(seccomp.actions().as_ref().unwrap().len(), crate::seccomp::ACTIONS.len());
        assert_eq!(seccomp.operators().as_ref().unwrap().len(), crate::seccomp::OPERATORS.len());
        assert_eq!(linux.capabilities().as_ref().unwrap().len(), 41);
        assert_eq!(f.mount_options().as_ref().unwrap().len(), crate::oci::MOUNT_OPTIONS.len());
    }
}
