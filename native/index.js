// Loads the compiled addon; throws when it was not built (tdr then keeps its wasm kernels).
module.exports = require('./build/Release/tdr_native.node');
