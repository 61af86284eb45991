// A Server Component: signed, versioned URLs made on the server (the key never reaches the
// browser), the same markup as the server's /srcset endpoint.
import { signedImageProps } from "edge-image-cdn/next";

export const dynamic = "force-dynamic"; // signed per request here; a real site may build it statically

export default async function Signed() {
  const rules = JSON.parse(process.env.EDGE_RULES);
  const props = await signedImageProps(rules, "card", "coffee.jpg", {
    origin: process.env.EDGE_ORIGIN,
    keyId: process.env.EDGE_KEY_ID,
    secret: process.env.EDGE_SECRET,
    alt: "A cup of coffee",
  });
  return (
    <main>
      {/* eslint-disable-next-line @next/next/no-img-element */}
      <img id="signed" {...props} />
    </main>
  );
}
