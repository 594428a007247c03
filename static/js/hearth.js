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
