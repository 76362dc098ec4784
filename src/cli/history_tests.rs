use super::*;

#[test]
fn ellipsis_cuts_as_docker() {
    assert_eq!(ellipsis("short", 45), "short");
    assert_eq!(
        ellipsis(&"x".repeat(46), 45),
        format!("{}…", "x".repeat(44))
    );
}

/// The history fields are docker's, so a template names them as with docker.
#[test]
fn history_fields_are_docker_s() {
    let names: Vec<&str> = TITLES.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "ID",
            "CreatedSince",
            "CreatedAt",
            "CreatedBy",
            "Size",
            "Comment"
        ]
    );
    let l = Listing::parse(TABLE).unwrap();
    let row = records(
        "history",
        &[vec![
            ("ID", "abc".into()),
            ("CreatedSince", "2 hours ago".into()),
            ("CreatedAt", "2020-01-01T00:00:00Z".into()),
            ("CreatedBy", "/bin/sh".into()),
            ("Size", "0B".into()),
            ("Comment", "".into()),
        ]],
    );
    assert_eq!(
        l.render(&row, TITLES).unwrap(),
        "IMAGE     CREATED       CREATED BY   SIZE      COMMENT\n\
         abc       2 hours ago   /bin/sh      0B        \n"
    );
}
