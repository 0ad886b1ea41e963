// Front-Channel Logout: once every client's logout page has loaded (or after 5 s, whichever is
// first), goes on to the next page. Loaded before the frames, without defer, so that a frame
// that loads at once is counted: iframe load events don't bubble, but a capturing listener on
// the document sees them. Without JavaScript the link does it.
(function () {
  var loaded = 0;
  var gone = false;
  function frames() {
    return document.querySelectorAll("iframe.frontchannel").length;
  }
  function go() {
    var next = document.getElementById("continue");
    if (gone || !next) return;
    gone = true;
    window.location.assign(next.href);
  }
  document.addEventListener("load", function (e) {
    var t = e.target;
    if (t && t.classList && t.classList.contains("frontchannel")) {
      loaded += 1;
      if (document.readyState !== "loading" && loaded >= frames()) go();
    }
  }, true);
  document.addEventListener("DOMContentLoaded", function () {
    if (loaded >= frames()) go();
    setTimeout(go, 5000);
  });
})();
