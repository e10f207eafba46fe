//! Supply chain: RUSTSEC-2023-0071 (Marvin) is accepted in deny.toml only because the `rsa`
//! crate never performs a private-key operation on a request path. This keeps it so: the
//! server's code may name `rsa` in one place, key generation, and only for generating a key
//! and exporting it; aws-lc-rs does every signature.

use std::path::Path;

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_rsa_crate_only_generates_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "entity/src", "migration/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let allowed_file = root.join("src/oauth/jwk.rs");
    // What key generation needs: make a key, read its public parts, export it as PKCS#8.
    let allowed_items =
        ["rsa::RsaPrivateKey::new", "rsa::pkcs8::EncodePrivateKey", "rsa::traits::PublicKeyParts"];
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        // Unit tests (a file's `#[cfg(test)]` module, at its end) are not server code.
        let server_code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in server_code.lines().enumerate() {
            if !line.contains("rsa::") || line.trim_start().starts_with("//") {
                continue;
            }
            checked += 1;
            let place = format!("{}:{}: {}", file.display(), number + 1, line.trim());
            assert_eq!(file, allowed_file, "the rsa crate is used outside key generation: {place}");
            assert!(
                allowed_items.iter().any(|item| line.contains(item)),
                "an rsa item other than key generation: {place}"
            );
            for operation in ["decrypt", "sign", "SigningKey", "Pkcs1v15", "Pss", "Oaep"] {
                assert!(!line.contains(operation), "a private-key operation: {place}");
            }
        }
    }
    assert!(checked > 0, "the scan found the key generation it allows");
}
