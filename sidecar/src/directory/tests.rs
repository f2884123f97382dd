use super::*;

fn load(text: &str) -> Result<Directory, FileError> {
    Directory::from_source(SourceFile::from_text(
        Path::new("dir.toml"),
        text.to_string(),
    ))
}

/// The payments fixture: payments (8080, 7000), the ledger (9000), an audit sink.
fn good() -> String {
    crate::fixtures::payments_directory()
}

#[test]
fn loads_services_and_looks_them_up() {
    let d = load(&good()).unwrap();
    assert_eq!(d.services().len(), 3);
    let p = d.service("payments").unwrap();
    assert_eq!(
        p.identity.as_str(),
        "spiffe://mesh.local/ns/shop/sa/payments"
    );
    assert_eq!(
        p.address_for(7000),
        Some("127.0.0.1:17000".parse().unwrap())
    );
    assert_eq!(p.address_for(1), None);
    assert_eq!(p.line, 1);
    let (s, port) = d.by_address(&"127.0.0.1:19000".parse().unwrap()).unwrap();
    assert_eq!((s.name.as_str(), port), ("ledger", 9000));
    assert!(d.by_address(&"127.0.0.1:1".parse().unwrap()).is_none());
    assert!(d.service("nope").is_none());
}

#[test]
fn errors_name_line_and_field() {
    let good = good();
    let e = load("[[service]]\nname = \"a\"\nidentity = \"spiffe://mesh.local/x\"\nendpoints = []\nport = 3\n").unwrap_err();
    assert_eq!(e.line, Some(5), "{e}");
    assert!(e.message.contains("unknown field"), "{e}");

    let e = load("[[service]]\nname = \"a\"\nidentity = \"spiffe://Mesh/x\"\nendpoints = []\n")
        .unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert_eq!(e.field.as_deref(), Some("service[0].identity"), "{e}");
    assert!(
        e.message
            .contains("invalid SPIFFE ID \"spiffe://Mesh/x\": trust domain must be lowercase"),
        "{e}"
    );

    let dup = format!("{good}\n[[service]]\nname = \"ledger\"\nidentity = \"spiffe://mesh.local/x\"\nendpoints = [{{ port = 1, address = \"127.0.0.1:1\" }}]\n");
    let e = load(&dup).unwrap_err();
    assert!(e.message.contains("listed twice"), "{e}");
    // The second ledger's name: after the fixture, a blank line and `[[service]]`.
    assert_eq!(e.line, Some(good.lines().count() + 3), "{e}");

    let same_addr = format!("{good}\n[[service]]\nname = \"x\"\nidentity = \"spiffe://mesh.local/x\"\nendpoints = [{{ port = 1, address = \"127.0.0.1:19000\" }}]\n");
    let e = load(&same_addr).unwrap_err();
    assert!(e.message.contains("already an endpoint of `ledger`"), "{e}");

    let e = load("[[service]]\nname = \"Bad_Name\"\nidentity = \"spiffe://mesh.local/x\"\nendpoints = [{ port = 1, address = \"127.0.0.1:1\" }]\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("service[0].name"), "{e}");
    assert!(
        e.to_string().starts_with("dir.toml:2:8: service[0].name: "),
        "{e}"
    );

    let e =
        load("[[service]]\nname = \"a\"\nidentity = \"spiffe://mesh.local/x\"\nendpoints = []\n")
            .unwrap_err();
    assert!(e.message.contains("no endpoints"), "{e}");
}
