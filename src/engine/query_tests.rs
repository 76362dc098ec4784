use super::*;

fn step(by: &str, empty: bool) -> History {
    History {
        created: None,
        created_by: Some(by.into()),
        author: None,
        comment: None,
        empty_layer: empty,
    }
}

#[test]
fn history_steps_take_the_layer_sizes_in_order_skipping_empty_ones() {
    let h = [step("ADD", false), step("ENV", true), step("RUN", false)];
    let rows = history_rows(&h, &[10, 20]);
    let sizes: Vec<u64> = rows.iter().map(|r| r.size).collect();
    assert_eq!(sizes, [10, 0, 20]);
    assert_eq!(rows[2].created_by, "RUN");
}

#[test]
fn an_image_without_history_shows_one_row_per_layer() {
    let rows = history_rows(&[], &[5, 6]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].size, 6);
    assert!(rows
        .iter()
        .all(|r| r.created.is_none() && r.created_by.is_empty()));
}
