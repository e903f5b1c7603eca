// lists the notes through the data API
document.getElementById("board").textContent = "loading";
