// next/image through the edge-image-cdn loader: the rule ("card") names the srcset's widths and
// the slot's sizes; the browser picks a candidate for its viewport and pixel ratio.
import Image from "next/image";
import { ruleProps } from "edge-image-cdn/next";

const rules = JSON.parse(process.env.EDGE_RULES);

export default function Home() {
  return (
    <main>
      <Image id="rocket" src="/rocket.jpg?rule=card" alt="A rocket on its pad" {...ruleProps(rules, "card")} priority
        style={{ width: "calc(100vw - 2rem)", height: "auto", margin: "0 1rem" }} />
    </main>
  );
}
