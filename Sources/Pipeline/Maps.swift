/// Map helpers the front ends use for side outputs.
public enum ImageTo3DMaps {
    /// Bilinear resampling of a row-major float map (pixel centres aligned).
    public static func upsample(_ map: [Float], width: Int, height: Int, to newWidth: Int, _ newHeight: Int) -> [Float] {
        FloatMap.resample(map, width: width, height: height, to: newWidth, newHeight)
    }
}
