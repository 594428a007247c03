// Model version page: every `form.api-form` posts its fields as JSON to `data-api`.
// Job forms (`data-kind`) wrap their fields as {kind, model_version, dataset_version, params}
// and open the new job's page; the others show the answer in the form's <output>.
(function () {
  "use strict";

  function value(field) {
    var type = field.dataset.type;
    if (type === "bool") return field.checked;
    if (type === "int") return parseInt(field.value, 10);
    if (type === "float") return parseFloat(field.value);
    return field.value;
  }

  function fields(form) {
    var top = {}, params = {};
    Array.prototype.forEach.call(form.querySelectorAll("[name]"), function (field) {
      if (field.dataset.optional && !field.value) return;
      (field.dataset.top ? top : params)[field.name] = value(field);
    });
    if (!form.dataset.kind) return Object.assign(top, params);
    return Object.assign(top, {
      kind: form.dataset.kind,
      model_version: parseInt(form.dataset.modelVersion, 10),
      params: params,
    });
  }

  function describe(form, body) {
    var show = form.dataset.show;
    if (show === "text") {
      return body.text + "\n\n" + body.latency_ms.toFixed(0) + " ms · " +
        body.tokens_per_second.toFixed(1) + " tokens/s · " + body.new_tokens + " tokens" +
        (body.watermarked ? " · watermarked" : "");
    }
    if (show === "verdict") {
      return body.verdict + (body.z_score === null ? "" : " (z = " + body.z_score.toFixed(2) + ")");
    }
    return "OK";
  }

  function errorText(body) {
    if (body && body.fields) {
      return Object.keys(body.fields).map(function (k) { return k + ": " + body.fields[k]; }).join("; ");
    }
    return (body && (body.detail || body.message)) || "Request failed";
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("api-form")) return;
    event.preventDefault();
    var out = form.querySelector(".api-result");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    out.textContent = "…";
    out.className = "api-result";
    fetch(form.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": hearthCsrf() },
      body: JSON.stringify(fields(form)),
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) throw body;
          if (form.dataset.kind) { window.location = "/jobs/" + body.id + "/"; return; }
          if (form.dataset.reload) { window.location.reload(); return; }
          out.textContent = describe(form, body);
        });
      })
      .catch(function (body) {
        out.textContent = errorText(body);
        out.className = "api-result error";
      })
      .finally(function () { button.disabled = false; });
  });
})();
