use super::*;

#[test]
fn insecure_registries_follow_dockers_default_and_the_list() {
    let default = "127.0.0.0/8,::1/128,localhost";
    let cases = [
        (default, "127.0.0.1:5000", true),
        (default, "127.9.8.7", true),
        (default, "localhost:5000", true),
        (default, "[::1]:5000", true),
        (default, "128.0.0.1:5000", false),
        (default, "docker.io", false),
        (default, "registry.example.com:443", false),
        ("", "127.0.0.1:5000", false),
        ("reg.local:5000", "reg.local:5000", true),
        ("reg.local:5000", "reg.local:5001", false),
        ("reg.local", "reg.local:5001", true),
        ("10.0.0.0/8 192.168.1.0/24", "10.1.2.3:5000", true),
        ("10.0.0.0/8 192.168.1.0/24", "192.168.2.1", false),
        ("bogus/cidr", "1.2.3.4", false),
    ];
    for (list, registry, want) in cases {
        assert_eq!(insecure_in(list, registry), want, "{list:?} {registry}");
    }
}
