// The web chat: posts each message (or pressed button) to /chat/send and shows the replies.
// Text is always inserted as text, never as HTML, so a reply cannot inject markup.
(function () {
  "use strict";
  var log, form, input, language, token, busy = false, started = false;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function bubble(who, text) {
    var row = el("div", "msg msg-" + who);
    row.appendChild(el("div", "bubble", text));
    log.appendChild(row);
    scrollDown();
    return row;
  }

  function disableButtons() {
    var old = log.querySelectorAll(".choices button");
    for (var i = 0; i < old.length; i++) old[i].disabled = true;
  }

  function showReplies(messages) {
    messages.forEach(function (m) {
      var row = bubble("bot", m.text || "");
      if (m.image) {
        var img = el("img", "chat-image");
        img.src = m.image; img.alt = "";
        row.firstChild.appendChild(img);
      }
      if (m.buttons && m.buttons.length) {
        var box = el("div", "choices");
        m.buttons.forEach(function (b) {
          if (b.url) {
            var a = el("a", "choice", b.title);
            a.href = b.url; a.target = "_blank"; a.rel = "noopener noreferrer";
            box.appendChild(a);
          } else {
            var btn = el("button", "choice", b.title);
            btn.type = "button";
            btn.addEventListener("click", function () { send({ button: b.id }, b.title); });
            box.appendChild(btn);
          }
        });
        row.appendChild(box);
      }
    });
    scrollDown();
  }

  function send(body, shown) {
    if (busy) return;
    busy = true;
    disableButtons();
    if (shown) bubble("me", shown);
    var typing = bubble("bot typing", "…");
    body.language = language.value;
    fetch("/chat/send", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (data.language) language.value = data.language;
        if (data.messages) return data.messages;
        return [{ text: data.error ? "Sorry: " + data.error : "Sorry, something went wrong." }];
      });
    }).catch(function () {
      return [{ text: "You seem to be offline. Please try again." }];
    }).then(function (messages) {
      typing.remove();
      showReplies(messages);
      busy = false;
      input.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    log = document.getElementById("chat-log");
    form = document.getElementById("chat-form");
    input = document.getElementById("chat-input");
    language = document.getElementById("chat-language");
    token = document.querySelector('meta[name="csrf-token"]').content;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var text = input.value.trim();
      if (!text || busy) return;
      input.value = "";
      send({ message: text }, text);
    });
    if (!started) {  // greet the visitor, as /start does on Telegram
      started = true;
      send({ message: "/start" }, null);
    }
    input.focus();
  });
})();
