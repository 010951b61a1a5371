//! `POST /api/uploads`: an archive to restore from, streamed to a private file with the disk's
//! free space watched, and checked as `restore --in` checks one before it is accepted.

use super::*;

/// Bytes free for an unprivileged writer on the disk holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    rustix::fs::statvfs(dir).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/uploads` (act): the request's body is the archive, streamed to a private file and
/// checked before it is accepted.
pub async fn upload(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Response {
    let user = match actor(&app, &headers, "upload an archive") {
        Ok(u) => u,
        Err((status, message)) => return error(status, &message),
    };
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if kind.starts_with("multipart/") || kind.starts_with("application/json") || kind.starts_with("text/") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the archive itself as the body (application/zip, application/gzip or application/octet-stream)",
        );
    }
    let max = app.restores.max_upload;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the upload is larger than the {} this server accepts (sophon serve --max-upload)",
                sophon::units::human_bytes(max)
            ),
        )
    };
    if declared.is_some_and(|n| n > max) {
        return too_big();
    }
    let root = app.restores.root.clone();
    let disk_full = |need: u64, free: u64| {
        error(
            StatusCode::INSUFFICIENT_STORAGE,
            &format!(
                "not enough space for the upload: {} free on the server's disk, {} needed (and {} kept free)",
                sophon::units::human_bytes(free),
                sophon::units::human_bytes(need),
                sophon::units::human_bytes(DISK_RESERVE)
            ),
        )
    };
    if let (Some(n), Some(free)) = (declared, free_space(&root)) {
        if n.saturating_add(DISK_RESERVE) > free {
            return disk_full(n, free);
        }
    }
    let name = q
        .name
        .as_deref()
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
        .unwrap_or_else(|| "upload".into());
    let id = auth::random_hex(12);
    let dir = root.join(format!("upload-{}-{id}", std::process::id()));
    let file = dir.join("archive");
    // From here on the folder is the upload's: dropped (removed) on every early return.
    let mut upload = Upload {
        id: id.clone(),
        dir: dir.clone(),
        file: file.clone(),
        name,
        bytes: 0,
        user: user.email.clone(),
        scope: user.scope.clone(),
        created: Instant::now(),
        sealed: false,
        chain: Mutex::new(None),
    };
    let created = private_dir(&dir).and_then(|()| {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&file)
    });
    let out = match created {
        Ok(f) => f,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("creating the upload file: {e}")),
    };
    let mut out = tokio::fs::File::from_std(out);
    let mut stream = body.into_data_stream();
    let mut next_check = SPACE_CHECK_EVERY;
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the upload stopped: {e}")),
        };
        upload.bytes += piece.len() as u64;
        if upload.bytes > max {
            return too_big();
        }
        if upload.bytes >= next_check {
            next_check += SPACE_CHECK_EVERY;
            if let Some(free) = free_space(&dir) {
                if free < DISK_RESERVE {
                    return disk_full(declared.unwrap_or(upload.bytes), free);
                }
            }
        }
        if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut out, &piece).await {
            if e.kind() == std::io::ErrorKind::StorageFull {
                return disk_full(declared.unwrap_or(upload.bytes), free_space(&dir).unwrap_or(0));
            }
            return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("writing the upload: {e}"));
        }
    }
    if let Err(e) = out.sync_all().await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("writing the upload: {e}"));
    }
    drop(out);
    if upload.bytes == 0 {
        return error(StatusCode::BAD_REQUEST, "the upload is empty: send the archive as the request's body");
    }
    // Checked as `restore --in` checks an archive, on a blocking thread.
    let home = app.home.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let outcome = check_upload(&mut upload, &home);
        (upload, outcome)
    })
    .await;
    let (upload, outcome) = match checked {
        Ok(x) => x,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "checking the upload failed"),
    };
    let detail =
        |outcome: &str| json!({ "outcome": outcome, "upload": upload.id, "name": upload.name, "bytes": upload.bytes });
    let info = match outcome {
        Ok(info) => info,
        Err((status, message)) => {
            audit(&app, &user, "dashboard.upload", detail(&message)).await;
            return error(status, &message);
        }
    };
    audit(&app, &user, "dashboard.upload", detail("ok")).await;
    let view = json!({
        "id": upload.id,
        "name": upload.name,
        "bytes": upload.bytes,
        "sealed": upload.sealed,
        "checked": info.is_some(),
        "backup": info,
        "note": if info.is_none() { Some("sealed: checked at the preview, with the passphrase given there") } else { None },
        "expires_in_seconds": UPLOAD_TTL.as_secs(),
    });
    app.restores.sweep();
    app.restores.uploads.lock().unwrap_or_else(|e| e.into_inner()).insert(upload.id.clone(), Arc::new(upload));
    (StatusCode::CREATED, Json(view)).into_response()
}

/// Check an upload as `restore --in` checks an archive: `Some(what it holds)`, or `None` for a
/// sealed one the server's passphrase does not open (its header is valid; the rest is checked at
/// the preview with the passphrase given there).
fn check_upload(upload: &mut Upload, home: &Path) -> Result<Option<gateway_restore::BackupInfo>, (StatusCode, String)> {
    let mut head = vec![0u8; sophon::format::seal::HEADER_LEN];
    let n = std::fs::File::open(&upload.file)
        .and_then(|mut f| {
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        })
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("reading the upload: {e}")))?;
    head.truncate(n);
    upload.sealed = sophon::format::seal::is_sealed(&head);
    let archive = upload.sealed
        || head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || head.starts_with(&[0x1f, 0x8b]);
    if !archive {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "{} is not a Sophon export archive: an export is a zip or tar.gz file, sealed or not, and this file \
                 starts as none of them",
                upload.name
            ),
        ));
    }
    let seal = server_seal(home);
    if upload.sealed && seal.is_none() {
        sophon::format::seal::SealHeader::decode(&head, &upload.name)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("not a Sophon export archive: {e}")))?;
        return Ok(None);
    }
    let opened = chain::open_for_restore(&upload.file, seal.as_ref().map(|p| p.as_slice()), &upload.dir)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, upload.tidy(&e.to_string())))?;
    let chain = match opened {
        Ok(c) => c,
        // Sealed with another passphrase than the server's: given at the preview.
        Err(Refusal::Unreadable(sophon::Error::Authentication { .. })) if upload.sealed => return Ok(None),
        Err(r) => return Err((StatusCode::BAD_REQUEST, upload.tidy(&refusal_text(&r)))),
    };
    let info = gateway_restore::describe(&chain).map_err(|e| (StatusCode::BAD_REQUEST, upload.tidy(&e.to_string())))?;
    *upload.chain.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(chain));
    Ok(Some(info))
}
