{
  "targets": [
    {
      "target_name": "tdr_native",
      "sources": ["src/tdr_native.c"],
      "cflags": ["-O3", "-march=native", "-std=c11"],
      "libraries": ["-lopenblas"]
    }
  ]
}
