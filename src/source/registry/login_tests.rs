use super::*;

#[test]
fn login_arguments_name_a_registry() {
    assert_eq!(login_registry("https://index.docker.io/v1/"), "docker.io");
    assert_eq!(login_registry("127.0.0.1:5000"), "127.0.0.1:5000");
    assert_eq!(login_registry("http://reg:5000/x"), "reg:5000");
}
