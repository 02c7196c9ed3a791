//! The stream's events and how one renders into a server message for a client's topics.
//! Shared by the fan-out ([`crate::hub`]) and the client loop ([`crate::stream`]); the rows
//! and messages themselves are `lpm_service::wire` (Rust clients parse them without this
//! crate).

use std::sync::Arc;

use lpm_engine::store::Update;
use lpm_engine::views::ViewRow;
use lpm_engine::Tick;
use lpm_service::wire::{to_wire, ServerMessage, WireChange};

use crate::cells::CellView;

/// What the fan-out publishes.
#[derive(Clone, Debug)]
pub enum Event {
    /// A view diff or a resync.
    Views(Arc<Update>),
    /// Case ids written at a tick.
    Cases(Tick, Arc<Vec<i64>>),
}

impl Event {
    pub(crate) fn tick(&self) -> Tick {
        match self {
            Event::Views(u) => match &**u {
                Update::Diff(d) => d.tick,
                Update::Resync { tick, .. } => *tick,
            },
            Event::Cases(t, _) => *t,
        }
    }
}

/// Which topics a client wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topics {
    /// View snapshots and diffs (every view but `hotspots`).
    pub views: bool,
    /// Case change notices.
    pub cases: bool,
    /// The `hotspots` view's rows, in the same snapshot and diff messages as the views: the
    /// cells its caller may see ([`crate::cells::HotspotsConfig::view_for`]); `None`: none.
    pub hotspots: Option<CellView>,
}

impl Topics {
    /// Whether view messages go to this client at all.
    pub fn any_rows(self) -> bool {
        self.views || self.hotspots.is_some()
    }

    /// Whether `row` goes to this client. A row is filtered on its own, so a client applying
    /// filtered diffs holds exactly the filtered state ([`CellView::shows`]).
    pub fn shows(self, row: &ViewRow) -> bool {
        match row {
            ViewRow::Hotspot { cell, figures } => {
                self.hotspots.is_some_and(|v| v.shows(*cell, figures))
            }
            _ => self.views,
        }
    }
}

/// The message `e` becomes for a client of `topics` (`None`: not one of its topics).
pub fn render(e: &Event, topics: Topics) -> Option<ServerMessage> {
    let shows = |r: &ViewRow| topics.shows(r);
    match e {
        Event::Views(u) if topics.any_rows() => Some(match &**u {
            Update::Diff(d) => ServerMessage::Diff {
                tick: d.tick,
                changes: d
                    .diffs
                    .iter()
                    .filter(|(r, _)| shows(r))
                    .filter_map(|(r, n)| {
                        to_wire(r).map(|row| WireChange {
                            row,
                            diff: *n as i64,
                        })
                    })
                    .collect(),
            },
            Update::Resync { tick, rows, .. } => ServerMessage::Snapshot {
                tick: *tick,
                rows: rows
                    .iter()
                    .filter(|r| shows(r))
                    .filter_map(to_wire)
                    .collect(),
            },
        }),
        Event::Cases(tick, ids) if topics.cases => Some(ServerMessage::Cases {
            tick: *tick,
            changed: ids.to_vec(),
        }),
        _ => None,
    }
}
