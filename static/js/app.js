// Gatehouse's only hand-written script. Pages work without it; it adds comfort, not function.
"use strict";
