// Front-Channel Logout: once every client's logout page has loaded (or after 5 s, whichever is
// first), goes on to the client's post-logout page. Without JavaScript the link does it.
(function () {
  var next = document.getElementById("continue");
  if (!next) return;
  var frames = document.querySelectorAll("iframe.frontchannel");
  var left = frames.length;
  var gone = false;
  function go() {
    if (gone) return;
    gone = true;
    window.location.assign(next.href);
  }
  frames.forEach(function (f) {
    f.addEventListener("load", function () {
      left -= 1;
      if (left <= 0) go();
    });
  });
  if (left === 0) go();
  setTimeout(go, 5000);
})();
