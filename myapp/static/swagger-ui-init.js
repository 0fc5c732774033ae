// Starts Swagger UI on the element #swagger-ui, whose data attributes name the
// documents to offer and the one to show first. A file of its own, so the docs
// pages' Content-Security-Policy needs no inline script.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    dom_id: "#swagger-ui",
    urls: JSON.parse(root.dataset.documents),
    "urls.primaryName": root.dataset.primary,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    deepLinking: true,
    // One Authorize serves every docs page of this origin, and survives reloads
    // (kept in the browser's localStorage).
    persistAuthorization: true,
    displayRequestDuration: true,
    filter: true,
    docExpansion: "list",
    // No badge from Swagger's online validator: it would send the document's
    // URL to a third party (and the page's CSP loads nothing from elsewhere).
    validatorUrl: null,
  });
});
