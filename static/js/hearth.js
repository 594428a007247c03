// Hearth: tiny vanilla script, no dependencies.
// Report the browser's time zone so the server renders times in it (stored in UTC).
(function () {
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("hearth_tz=" + tz) === -1) {
      document.cookie = "hearth_tz=" + tz + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* old browser: UTC it is */ }
})();

// CSRF token for fetch/XHR writes (the cookie is readable by design; the header is the check).
function hearthCsrf() {
  var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function hearthError(body, fallback) {
  if (body && body.detail) return body.detail;
  return fallback;
}

// Dataset upload: drag and drop or file picker, XHR for a progress bar, cancel aborts.
document.addEventListener("DOMContentLoaded", function () {
  var zone = document.getElementById("dropzone");
  if (!zone) return;
  var input = document.getElementById("upload-input");
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var percent = document.getElementById("upload-percent");
  var message = document.getElementById("upload-message");
  var cancel = document.getElementById("upload-cancel");
  var xhr = null;

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  function upload(file) {
    var limit = parseInt(zone.dataset.limit, 10);
    if (limit && file.size > limit) {
      say("The file is larger than the upload limit (" + Math.floor(limit / 1048576) + " MiB).", true);
      return;
    }
    var form = new FormData();
    form.append("file", file);
    xhr = new XMLHttpRequest();
    xhr.open("POST", zone.dataset.url);
    xhr.setRequestHeader("X-CSRFToken", hearthCsrf());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var p = Math.round((e.loaded / e.total) * 100);
      bar.value = p;
      percent.textContent = p + "%";
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      status.hidden = true;
      if (xhr.status === 201) {
        say("Version " + body.number + " created: " + body.row_count + " rows.", false);
        window.location.href = "/datasets/versions/" + body.id + "/";
      } else {
        say(hearthError(body, "Upload failed (" + xhr.status + ")."), true);
      }
      xhr = null;
    };
    xhr.onerror = function () { status.hidden = true; say("Upload failed: connection lost.", true); xhr = null; };
    xhr.onabort = function () { status.hidden = true; say("Upload cancelled.", false); xhr = null; };
    document.getElementById("upload-name").textContent = file.name;
    bar.value = 0;
    percent.textContent = "0%";
    status.hidden = false;
    say("", false);
    xhr.send(form);
  }

  input.addEventListener("change", function () { if (input.files.length) upload(input.files[0]); });
  cancel.addEventListener("click", function () { if (xhr) xhr.abort(); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
});

// Desensitization: show the policy's effect on the first rows before running it.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("desensitize-preview-button");
  if (!button) return;
  var out = document.getElementById("desensitize-preview");
  button.addEventListener("click", function () {
    var payload = { preset: document.getElementById("preset").value };
    var policy = document.getElementById("policy").value.trim();
    if (policy) {
      try { payload.policy = JSON.parse(policy); } catch (e) { out.textContent = "Policy is not valid JSON."; return; }
    }
    out.textContent = "…";
    fetch(button.dataset.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": hearthCsrf(), Accept: "application/json" },
      body: JSON.stringify(payload),
      credentials: "same-origin",
    }).then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (res) {
        var body = res[1];
        if (res[0] !== 200) { out.textContent = hearthError(body, "Preview failed."); return; }
        var table = document.createElement("table");
        table.className = "table small";
        table.id = "desensitize-preview-table";
        body.rows.forEach(function (pair) {
          var tr = table.insertRow();
          if (body.raw) tr.insertCell().textContent = JSON.stringify(pair.before);
          tr.insertCell().textContent = JSON.stringify(pair.after);
        });
        out.textContent = "";
        out.appendChild(table);
      });
  });
});

// Job page: poll the job until it ends; cancel button.
document.addEventListener("DOMContentLoaded", function () {
  var job = document.getElementById("job");
  if (!job) return;
  var cancel = document.getElementById("job-cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      fetch(cancel.dataset.url, { method: "POST", headers: { "X-CSRFToken": hearthCsrf() }, credentials: "same-origin" })
        .then(function () { window.location.reload(); });
    });
  }
  if (job.dataset.final === "1") return;
  var timer = setInterval(function () {
    fetch(job.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        document.getElementById("job-status").textContent = body.status;
        document.getElementById("job-progress").value = body.progress;
        document.getElementById("job-message").textContent = body.message;
        if (["succeeded", "failed", "cancelled"].indexOf(body.status) !== -1) {
          clearInterval(timer);
          window.location.reload();
        }
      });
  }, 1000);
});
