//! Test-only certificates for mutual TLS, made fresh per test with rcgen:
//! a simulator CA with a server and a client certificate, and another CA
//! with a client certificate the simulator must refuse.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

pub struct Pem {
    pub cert: String,
    pub key: String,
}

pub struct TestPki {
    pub ca: String,
    pub server: Pem,
    pub client: Pem,
    /// Issued by another CA.
    pub stranger: Pem,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Pem {
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

pub fn pki() -> TestPki {
    let ca_a = ca("Ockto simulator test CA");
    let ca_b = ca("Some other CA");
    TestPki {
        ca: ca_a.pem(),
        server: leaf(
            &ca_a,
            "ockto simulator",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(
            &ca_a,
            "gangway tests",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
        stranger: leaf(
            &ca_b,
            "gangway tests",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    }
}
