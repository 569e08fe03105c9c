//! An R-tree of points on the unit sphere.
//!
//! Points are stored as 3-D unit vectors, not raw lon/lat: the straight-line (chord) distance
//! between unit vectors grows monotonically with the great-circle distance, so the R-tree's own
//! nearest-neighbour order *is* the haversine order, with no distortion towards the poles or at
//! the antimeridian. The final cut against the radius uses [`distance_m`].

use std::collections::HashMap;
use std::hash::Hash;

use rstar::{AABB, PointDistance, RTree, RTreeObject};

use crate::domain::LatLng;
use crate::domain::distance::{EARTH_RADIUS_M, distance_m};

#[derive(Clone, Debug, PartialEq)]
struct Entry<Id> {
    id: Id,
    xyz: [f64; 3],
    at: LatLng,
}

impl<Id> RTreeObject for Entry<Id> {
    type Envelope = AABB<[f64; 3]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.xyz)
    }
}

impl<Id> PointDistance for Entry<Id> {
    fn distance_2(&self, p: &[f64; 3]) -> f64 {
        let d = [self.xyz[0] - p[0], self.xyz[1] - p[1], self.xyz[2] - p[2]];
        d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    }
}

fn unit_vector(p: LatLng) -> [f64; 3] {
    let (lat, lng) = (p.lat.to_radians(), p.lng.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

/// Squared chord length on the unit sphere for a great-circle distance, padded a little so
/// float rounding never drops a point the haversine check would keep.
fn chord_2(radius_m: f64) -> f64 {
    let theta = (radius_m / EARTH_RADIUS_M).min(std::f64::consts::PI);
    let chord = 2.0 * (theta / 2.0).sin();
    chord * chord * (1.0 + 1e-9) + 1e-18
}

/// Points keyed by id; each id is in the index at most once.
#[derive(Debug)]
pub struct PointIndex<Id> {
    tree: RTree<Entry<Id>>,
    positions: HashMap<Id, LatLng>,
}

impl<Id> Default for PointIndex<Id> {
    fn default() -> Self {
        Self {
            tree: RTree::new(),
            positions: HashMap::new(),
        }
    }
}

impl<Id: Copy + Eq + Hash + PartialEq> PointIndex<Id> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index in one pass (faster than repeated inserts for a cold start).
    pub fn bulk_load(points: impl IntoIterator<Item = (Id, LatLng)>) -> Self {
        let mut positions = HashMap::new();
        for (id, at) in points {
            positions.insert(id, at);
        }
        let entries = positions
            .iter()
            .map(|(&id, &at)| Entry {
                id,
                xyz: unit_vector(at),
                at,
            })
            .collect();
        Self {
            tree: RTree::bulk_load(entries),
            positions,
        }
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn contains(&self, id: Id) -> bool {
        self.positions.contains_key(&id)
    }

    /// Inserts or moves `id` to `at`.
    pub fn upsert(&mut self, id: Id, at: LatLng) {
        self.remove(id);
        self.tree.insert(Entry {
            id,
            xyz: unit_vector(at),
            at,
        });
        self.positions.insert(id, at);
    }

    pub fn remove(&mut self, id: Id) -> bool {
        match self.positions.remove(&id) {
            Some(at) => {
                let entry = Entry {
                    id,
                    xyz: unit_vector(at),
                    at,
                };
                self.tree.remove(&entry).is_some()
            }
            None => false,
        }
    }

    /// The nearest point within `radius_m` of `from` whose id is not excluded, with its distance.
    pub fn nearest_within(
        &self,
        from: LatLng,
        radius_m: f64,
        mut excluded: impl FnMut(Id) -> bool,
    ) -> Option<(Id, f64)> {
        let limit = chord_2(radius_m);
        let q = unit_vector(from);
        self.tree
            .nearest_neighbor_iter_with_distance_2(&q)
            .take_while(|(_, d2)| *d2 <= limit)
            .filter(|(e, _)| !excluded(e.id))
            .map(|(e, _)| (e.id, distance_m(from, e.at)))
            .find(|(_, d)| *d <= radius_m)
    }

    /// Every point within `radius_m` of `from`, nearest first.
    pub fn all_within(&self, from: LatLng, radius_m: f64) -> Vec<(Id, f64)> {
        let limit = chord_2(radius_m);
        let q = unit_vector(from);
        self.tree
            .nearest_neighbor_iter_with_distance_2(&q)
            .take_while(|(_, d2)| *d2 <= limit)
            .map(|(e, _)| (e.id, distance_m(from, e.at)))
            .filter(|(_, d)| *d <= radius_m)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn point() -> impl Strategy<Value = LatLng> {
        // A city-sized box plus a few far-flung points, so both "in range" and "none" happen.
        prop_oneof![
            4 => (12.90f64..13.05, 77.50f64..77.70),
            1 => (-89.9f64..89.9, -179.9f64..179.9),
        ]
        .prop_map(|(lat, lng)| LatLng::parse(lat, lng).unwrap()) // ranges are valid
    }

    proptest! {
        #[test]
        fn nearest_matches_a_brute_force_haversine_scan(
            riders in proptest::collection::vec(point(), 0..200),
            moves in proptest::collection::vec((0usize..200, point()), 0..50),
            query in point(),
            excluded in proptest::collection::hash_set(0usize..200, 0..40),
            radius in 100.0f64..20_000.0,
        ) {
            let mut index = PointIndex::new();
            let mut truth: HashMap<usize, LatLng> = HashMap::new();
            for (i, p) in riders.iter().enumerate() {
                index.upsert(i, *p);
                truth.insert(i, *p);
            }
            for (i, p) in moves {
                if i < riders.len() {
                    index.upsert(i, p);
                    truth.insert(i, p);
                }
            }
            let got = index.nearest_within(query, radius, |id| excluded.contains(&id));
            let want = truth
                .iter()
                .filter(|(id, _)| !excluded.contains(id))
                .map(|(id, p)| (*id, distance_m(query, *p)))
                .filter(|(_, d)| *d <= radius)
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match (got, want) {
                (None, None) => {}
                (Some((_, gd)), Some((_, wd))) => prop_assert!((gd - wd).abs() < 1e-6, "{gd} vs {wd}"),
                (g, w) => prop_assert!(false, "index {g:?} vs scan {w:?}"),
            }
            let all: HashSet<usize> = index.all_within(query, radius).into_iter().map(|x| x.0).collect();
            let all_truth: HashSet<usize> = truth.iter().filter(|(_, p)| distance_m(query, **p) <= radius).map(|x| *x.0).collect();
            prop_assert_eq!(all, all_truth);
        }
    }

    #[test]
    fn removed_points_are_never_returned() {
        let mut index = PointIndex::new();
        let p = LatLng::parse(12.97, 77.59).unwrap();
        index.upsert(1, p);
        assert!(index.remove(1));
        assert!(!index.remove(1));
        assert_eq!(index.nearest_within(p, 5_000.0, |_| false), None);
    }
}
