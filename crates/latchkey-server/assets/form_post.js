// Submits the OAuth form_post response as soon as the page loads (the CSP forbids inline script).
document.getElementById("response").submit();
