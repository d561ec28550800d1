//! Matching face vectors against the identity library: the faces of every active identity,
//! the nearest one to a track, and re-matching stored tracks when the library changes (a new
//! person, a merge, a deletion), so a change takes effect without a restart or a re-run.

use sqlx::PgPool;

use crate::pipeline::face::tracks::{SAME_PERSON, cosine_distance};

/// One face vector of a known person.
#[derive(Debug, Clone)]
pub struct Known {
    pub identity_id: String,
    pub name: String,
    pub vector: Vec<f32>,
}

pub async fn known_faces(pool: &PgPool) -> Result<Vec<Known>, sqlx::Error> {
    let rows: Vec<(String, String, Vec<f32>)> = sqlx::query_as(
        "SELECT f.identity_id, i.name, f.vector FROM identity_faces f \
         JOIN identities i ON i.id = f.identity_id WHERE i.status = 'active' ORDER BY f.id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(identity_id, name, vector)| Known {
            identity_id,
            name,
            vector,
        })
        .collect())
}

/// The known face nearest to `vector`, if it is the same person.
pub fn nearest<'a>(known: &'a [Known], vector: &[f32]) -> Option<(&'a Known, f64)> {
    known
        .iter()
        .map(|k| (k, cosine_distance(&k.vector, vector)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, d)| *d <= SAME_PERSON)
}

/// Matches every track a person did not bind against the library as it is now; returns how
/// many tracks changed identity.
pub async fn rematch_tracks(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let known = known_faces(pool).await?;
    let tracks: Vec<(i64, Option<String>, Vec<f32>)> =
        sqlx::query_as("SELECT id, identity_id, vector FROM face_tracks WHERE NOT bound")
            .fetch_all(pool)
            .await?;
    let mut changed = 0;
    let mut tx = pool.begin().await?;
    for (id, current, vector) in tracks {
        let found = nearest(&known, &vector);
        let identity = found.map(|(k, _)| k.identity_id.clone());
        if identity != current {
            changed += 1;
        }
        sqlx::query("UPDATE face_tracks SET identity_id = $1, distance = $2 WHERE id = $3")
            .bind(&identity)
            .bind(found.map(|(_, d)| d))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(changed)
}
